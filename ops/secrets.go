package ops

// secretDef is one secret isisctl manages: where its value comes from in
// isisctl.yaml, the Podman secret it becomes and the setting isis reads it
// through (as SETTING_FILE, never as a plain environment value).
type SecretDef struct {
	Name     string // the Podman secret, mounted at /run/secrets/Name
	Key      string // the configuration key (and Key+"_file")
	Setting  string // isis's setting, read from Setting+"_FILE"
	Optional bool
	MinLen   int
	Postgres string // PostgreSQL's *_FILE variable, when the database reads it too
	value    func(c *Config) (value, file string)
}

// secretTable is every secret, in the order they are created and mounted.
var SecretTable = []SecretDef{
	{Name: SecretKeyName, Key: "secrets.secret_key", Setting: "SECRET_KEY", MinLen: 32,
		value: func(c *Config) (string, string) { return c.Secrets.SecretKey, c.Secrets.SecretKeyFile }},
	{Name: DatabasePasswordName, Key: "secrets.database_password", Setting: "DATABASE_PASSWORD", Postgres: "POSTGRES_PASSWORD",
		value: func(c *Config) (string, string) { return c.Secrets.DatabasePassword, c.Secrets.DatabasePasswordFile }},
	{Name: AWSSecretName, Key: "secrets.aws_secret_access_key", Setting: "AWS_SECRET_ACCESS_KEY", Optional: true,
		value: func(c *Config) (string, string) {
			return c.Secrets.AWSSecretAccessKey, c.Secrets.AWSSecretAccessKeyFile
		}},
}

// configured reports whether the configuration gives the secret a value.
func (s SecretDef) Configured(c *Config) bool {
	v, f := s.value(c)
	return v != "" || f != ""
}

// plainSecretSettings are the environment variables that must never carry
// a secret in plain: each secret's setting and PostgreSQL's, and
// DATABASE_URL (which would hold the password).
func plainSecretSettings() map[string]string {
	m := map[string]string{"DATABASE_URL": "postgres.*"}
	for _, s := range SecretTable {
		m[s.Setting] = s.Key
		if s.Postgres != "" {
			m[s.Postgres] = s.Key
		}
	}
	return m
}
