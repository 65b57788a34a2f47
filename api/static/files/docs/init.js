// Renders the isis OpenAPI document (GET /api/schema/) with swagger-ui.
window.ui = SwaggerUIBundle({
  url: new URL('/api/schema/', window.location.href).href,
  dom_id: '#swagger-ui',
  deepLinking: true,
});
