package apihttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/auth"
	"github.com/isis-project/isis/api/emailaddr"
	"github.com/labstack/echo/v4"
)

// mwAuthenticate reads "Authorization: Bearer <access>" like SimpleJWT's
// JWTAuthentication under DRF: no header (or another scheme) is anonymous; a
// bad token is a 401 on every route, public ones included.
func (s *Server) mwAuthenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := header(c.Request().Header, "Authorization")
		if h == "" || hostExempt(c.Request().URL.Path) {
			return next(c)
		}
		scheme, token, n := authFields(h)
		if n == 0 || !strings.EqualFold(scheme, "Bearer") {
			return next(c)
		}
		if n != 2 {
			return api.Errorf(api.ETOKENINVALID, "Authorization header must contain two space-delimited values")
		}
		id, err := s.JWT.AccessUserID(token)
		if err != nil {
			return api.Errorf(api.ETOKENINVALID, "Given token not valid for any token type")
		}
		u, err := s.Users.FindUserByID(c.Request().Context(), id)
		if err != nil {
			if api.ErrorCode(err) == api.ENOTFOUND {
				return api.Errorf(api.EAUTHFAILED, "User not found")
			}
			return err
		}
		if !u.IsActive {
			return api.Errorf(api.EAUTHFAILED, "User is inactive")
		}
		state(c).user = u
		return next(c)
	}
}

// authFields splits an Authorization header on whitespace as DRF does
// (header.split()): the first two fields and how many there are (3 means 3
// or more). strings.Fields, without the slice it allocates per request.
func authFields(h string) (first, second string, n int) {
	for i := 0; i < len(h) && n < 3; {
		for i < len(h) && isSpace(h[i]) {
			i++
		}
		if i == len(h) {
			break
		}
		j := i
		for j < len(h) && !isSpace(h[j]) {
			j++
		}
		switch n {
		case 0:
			first = h[i:j]
		case 1:
			second = h[i:j]
		}
		n++
		i = j
	}
	return first, second, n
}

// isSpace is Python's bytes whitespace: space, \t, \n, \v, \f, \r.
func isSpace(b byte) bool { return b == ' ' || (b >= '\t' && b <= '\r') }

// currentUser is the authenticated user, or nil.
func currentUser(c echo.Context) *api.User {
	return state(c).user
}

// requireUser returns the user or a 401 not_authenticated.
func requireUser(c echo.Context) (*api.User, error) {
	if u := currentUser(c); u != nil {
		return u, nil
	}
	return nil, api.Errorf(api.EUNAUTHENTICATED, "Authentication credentials were not provided.")
}

// requireStaff returns the staff user, 401 when anonymous, 403 otherwise.
func requireStaff(c echo.Context) (*api.User, error) {
	u, err := requireUser(c)
	if err != nil {
		return nil, err
	}
	if !u.IsStaff {
		return nil, errForbidden()
	}
	return u, nil
}

func errForbidden() error {
	return api.Errorf(api.EFORBIDDEN, "You do not have permission to perform this action.")
}

// staffOnly wraps a handler with requireStaff.
func staffOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, err := requireStaff(c); err != nil {
			return err
		}
		return next(c)
	}
}

func (s *Server) registerAuthRoutes(g *echo.Group) {
	g.POST("/token", s.throttled(s.throttleToken, s.handleTokenObtain))
	g.POST("/token/refresh", s.handleTokenRefresh)
	g.POST("/token/verify", s.handleTokenVerify)
	g.POST("/token/blacklist", s.handleTokenBlacklist)
	g.POST("/auth/register", s.throttled(s.throttleRegister, s.handleRegister))
	g.POST("/auth/google", s.throttled(s.throttleGoogle, s.handleGoogle))
	g.POST("/auth/google/link", s.throttled(s.throttleGoogle, s.handleGoogleLink))
	g.DELETE("/auth/google/link", s.handleGoogleUnlink)
}

// required checks a string field is present and not blank (DRF's messages);
// a field bindFields already refused keeps its one message.
func required(fe *api.FieldErrors, name string, v *string) string {
	switch {
	case (*fe)[name] != nil:
		return ""
	case v == nil:
		fe.Add(name, "This field is required.")
		return ""
	case strings.TrimSpace(*v) == "":
		fe.Add(name, "This field may not be blank.")
		return ""
	}
	return *v
}

// bindField reads a JSON object body holding one required string field.
func (s *Server) bindField(c echo.Context, name string) (string, error) {
	var in map[string]any
	if err := s.bindJSON(c, &in); err != nil {
		return "", err
	}
	var fe api.FieldErrors
	var v *string
	switch x := in[name].(type) {
	case nil:
		if _, present := in[name]; present {
			fe.Add(name, msgNotNull)
		}
	case string:
		v = &x
	case json.Number: // DRF's CharField takes a number as its text
		s := pyNumber(x)
		v = &s
	default:
		fe.Add(name, "Not a valid string.")
	}
	token := required(&fe, name, v)
	return token, fe.Err()
}

func errBadCredentials() error {
	return api.Errorf(api.EAUTHFAILED, "No active account found with the given credentials")
}

type tokenPair struct {
	Access  string `json:"access"`
	Refresh string `json:"refresh"`
}

// issuePair mints an access and a refresh token and records the refresh one.
func (s *Server) issuePair(ctx context.Context, userID int64) (*tokenPair, error) {
	access, _, err := s.JWT.Mint(userID, auth.Access)
	if err != nil {
		return nil, err
	}
	refresh, rc, err := s.JWT.Mint(userID, auth.Refresh)
	if err != nil {
		return nil, err
	}
	if err := s.RefreshTokens.AddOutstanding(ctx, outstanding(rc)); err != nil {
		return nil, err
	}
	return &tokenPair{Access: access, Refresh: refresh}, nil
}

// signIn ends a successful login: last_login, then a recorded token pair.
func (s *Server) signIn(c echo.Context, u *api.User) error {
	ctx := c.Request().Context()
	if err := s.Users.TouchLogin(ctx, u.ID); err != nil {
		return err
	}
	state(c).user = u // for the log line
	pair, err := s.issuePair(ctx, u.ID)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, pair)
}

// outstanding is the blacklist record of a refresh token; a token without
// iat (valid for SimpleJWT) is recorded without a creation time.
func outstanding(c *auth.Claims) api.OutstandingToken {
	t := api.OutstandingToken{JTI: c.ID, UserID: int64(c.UserID), ExpiresAt: c.ExpiresAt.Time}
	if c.IssuedAt != nil {
		t.CreatedAt = c.IssuedAt.Time
	}
	return t
}

func (s *Server) handleTokenObtain(c echo.Context) error {
	var in struct {
		Email    *string `json:"email"`
		Username *string `json:"username"`
		Password *string `json:"password"`
	}
	fe, err := s.bindFields(c, &in)
	if err != nil {
		return err
	}
	if in.Email == nil && fe["email"] == nil {
		in.Email = in.Username
	}
	email := required(&fe, "email", in.Email)
	password := required(&fe, "password", in.Password)
	if err := fe.Err(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	u, err := s.Users.FindUserByEmail(ctx, email)
	if err != nil {
		if api.ErrorCode(err) == api.ENOTFOUND {
			auth.CheckDummy(password) // same time as a wrong password
			return errBadCredentials()
		}
		return err
	}
	if err := auth.CheckableHash(u.Password); err != nil && auth.UsablePassword(u.Password) {
		// A stored hash isis refuses to compute (an imported one out of
		// bounds, or malformed): a wrong password, in a wrong password's time.
		s.Logger.Warn("password hash refused", "request_id", requestID(c), "user_id", u.ID, "problem", err.Error())
		auth.CheckDummy(password)
		return errBadCredentials()
	}
	ok, upgrade := auth.CheckPassword(password, u.Password)
	if !ok || !u.IsActive {
		return errBadCredentials()
	}
	if upgrade {
		if h, err := auth.HashPassword(password); err == nil {
			if err := s.Users.SetPassword(ctx, u.ID, h); err != nil {
				return err
			}
		}
	}
	return s.signIn(c, u)
}

func errTokenInvalid() error {
	return api.Errorf(api.ETOKENINVALID, "Token is invalid or expired")
}

// checkRefresh parses a refresh token and checks the blacklist.
func (s *Server) checkRefresh(ctx context.Context, token string) (*auth.Claims, error) {
	claims, err := s.JWT.Parse(token, auth.Refresh)
	if err != nil {
		return nil, errTokenInvalid()
	}
	black, err := s.RefreshTokens.IsBlacklisted(ctx, claims.ID)
	if err != nil {
		return nil, err
	}
	if black {
		return nil, api.Errorf(api.ETOKENINVALID, "Token is blacklisted")
	}
	return claims, nil
}

func (s *Server) handleTokenRefresh(c echo.Context) error {
	token, err := s.bindField(c, "refresh")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	claims, err := s.checkRefresh(ctx, token)
	if err != nil {
		return err
	}
	u, err := s.Users.FindUserByID(ctx, int64(claims.UserID))
	if err != nil || !u.IsActive {
		if err != nil && api.ErrorCode(err) != api.ENOTFOUND {
			return err
		}
		return api.Errorf(api.ETOKENINVALID, "No active account found for the given token.")
	}
	access, _, err := s.JWT.Mint(u.ID, auth.Access)
	if err != nil {
		return err
	}
	out := map[string]string{"access": access}
	if s.Config.RotateRefreshTokens {
		if s.Config.BlacklistAfterRotation {
			// A concurrent refresh with the same token loses here (token_not_valid).
			if err := s.RefreshTokens.Blacklist(ctx, outstanding(claims)); err != nil {
				return err
			}
		}
		refresh, rc, err := s.JWT.Mint(u.ID, auth.Refresh)
		if err != nil {
			return err
		}
		if err := s.RefreshTokens.AddOutstanding(ctx, outstanding(rc)); err != nil {
			return err
		}
		out["refresh"] = refresh
	}
	return writeJSON(c, http.StatusOK, out)
}

func (s *Server) handleTokenVerify(c echo.Context) error {
	token, err := s.bindField(c, "token")
	if err != nil {
		return err
	}
	claims, err := s.JWT.Parse(token, "")
	if err != nil {
		return errTokenInvalid()
	}
	if claims.TokenType == auth.Refresh {
		if _, err := s.checkRefresh(c.Request().Context(), token); err != nil {
			return err
		}
	}
	return writeJSON(c, http.StatusOK, struct{}{})
}

func (s *Server) handleTokenBlacklist(c echo.Context) error {
	token, err := s.bindField(c, "refresh")
	if err != nil {
		return err
	}
	claims, err := s.JWT.Parse(token, auth.Refresh)
	if err != nil {
		return errTokenInvalid()
	}
	if err := s.RefreshTokens.Blacklist(c.Request().Context(), outstanding(claims)); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, struct{}{})
}

// checkEmail validates an address as DRF's EmailField(max_length=254)
// does, after the caller trimmed it: length, NUL characters, then Django's
// EmailValidator (emailaddr.Validate).
func checkEmail(fe *api.FieldErrors, email string) {
	if utf8.RuneCountInString(email) > 254 {
		fe.Add("email", "Ensure this field has no more than 254 characters.")
	}
	if strings.IndexByte(email, 0) >= 0 {
		fe.Add("email", "Null characters are not allowed.")
	}
	if emailaddr.Validate(email) != nil {
		fe.Add("email", emailaddr.ErrInvalid.Error())
	}
}

func checkName(fe *api.FieldErrors, field string, v *string) {
	if v != nil && len([]rune(*v)) > 150 {
		fe.Add(field, "Ensure this field has no more than 150 characters.")
	}
}

func (s *Server) handleRegister(c echo.Context) error {
	var in struct {
		Email     *string `json:"email"`
		Password  *string `json:"password"`
		FirstName *string `json:"first_name"`
		LastName  *string `json:"last_name"`
	}
	fe, err := s.bindFields(c, &in)
	if err != nil {
		return err
	}
	email := emailaddr.Trim(required(&fe, "email", in.Email))
	if email != "" {
		checkEmail(&fe, email)
	}
	password := required(&fe, "password", in.Password)
	checkName(&fe, "first_name", in.FirstName)
	checkName(&fe, "last_name", in.LastName)
	u := &api.User{Email: email, IsActive: true}
	if in.FirstName != nil {
		u.FirstName = strings.TrimSpace(*in.FirstName)
	}
	if in.LastName != nil {
		u.LastName = strings.TrimSpace(*in.LastName)
	}
	if password != "" {
		for _, msg := range auth.ValidatePassword(password, auth.UserAttributes{Email: email, FirstName: u.FirstName, LastName: u.LastName}) {
			fe.Add("password", msg)
		}
	}
	if err := fe.Err(); err != nil {
		return err
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	u.Password = hash
	if err := s.Users.CreateUser(c.Request().Context(), u); err != nil {
		return err
	}
	state(c).user = u // for the log line
	return writeJSON(c, http.StatusCreated, u)
}

// verifyGoogle reads and verifies the body's id_token: 404 when Google
// sign-in is off, 401 for a token Google did not issue to this client, 400
// for claims isis cannot store (an email that is not one, NUL characters).
func (s *Server) verifyGoogle(c echo.Context) (*auth.GoogleIdentity, error) {
	if s.Google == nil {
		return nil, api.Errorf(api.ENOTFOUND, "Not found.")
	}
	token, err := s.bindField(c, "id_token")
	if err != nil {
		return nil, err
	}
	id, err := s.Google.Verify(c.Request().Context(), token)
	if err != nil {
		if errors.Is(err, auth.ErrJWKSUnavailable) {
			return nil, api.WrapError(api.EUNAVAILABLE, auth.ErrJWKSUnavailable.Error(), err)
		}
		return nil, api.Errorf(api.EAUTHFAILED, "%s", auth.ErrGoogleToken.Error())
	}
	var fe api.FieldErrors
	for _, claim := range []struct{ name, value string }{
		{"sub", id.Subject}, {"email", id.Email}, {"given_name", id.GivenName}, {"family_name", id.FamilyName},
	} {
		if strings.IndexByte(claim.value, 0) >= 0 {
			fe.Add("id_token", fmt.Sprintf("The ID token's %s claim contains a null character.", claim.name))
		}
	}
	if len(id.Subject) > 255 {
		fe.Add("id_token", "The ID token's sub claim is longer than 255 characters.")
	}
	if emailaddr.Validate(id.Email) != nil || utf8.RuneCountInString(id.Email) > 254 {
		fe.Add("id_token", "The ID token's email claim is not a valid email address.")
	}
	return id, fe.Err()
}

// handleGoogle signs in with a Google ID token. The user linked to the
// Google account (its sub) signs in; failing that, the user holding its
// email does only when Google already owns that account (see
// googleUserByEmail); a new email makes a new account linked to it.
func (s *Server) handleGoogle(c echo.Context) error {
	id, err := s.verifyGoogle(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	u, err := s.Users.FindUserByGoogleSub(ctx, id.Subject)
	if api.ErrorCode(err) == api.ENOTFOUND {
		u, err = s.googleUserByEmail(ctx, id)
	}
	if err != nil {
		return err
	}
	if !u.IsActive {
		return errBadCredentials()
	}
	return s.signIn(c, u)
}

// googleUserByEmail is the account for a Google identity no user is linked
// to yet. A new email gets a new account, linked. An existing account is
// linked only when Google could already sign in to it and nothing else
// could: it has no usable password and no other Google account (an account
// Google sign-in made before isis recorded subjects, or an imported one
// without a password). Any other account with that email was made with a
// password nobody proved to belong to the email's owner: linking it would
// hand it to whoever registered it first, so the answer is 409
// google_account_not_linked and its owner links Google while signed in.
func (s *Server) googleUserByEmail(ctx context.Context, id *auth.GoogleIdentity) (*api.User, error) {
	for range 2 { // a second round after losing a race with a concurrent sign-in
		u, err := s.Users.FindUserByEmail(ctx, id.Email)
		switch {
		case api.ErrorCode(err) == api.ENOTFOUND:
			u = &api.User{Email: id.Email, FirstName: truncateRunes(id.GivenName, 150), LastName: truncateRunes(id.FamilyName, 150),
				IsActive: true, Password: auth.UnusablePassword(), GoogleSub: id.Subject}
			err = s.Users.CreateUser(ctx, u)
			if code := api.ErrorCode(err); code == api.EINVALID || code == api.EGOOGLEINUSE {
				continue
			}
			return u, err
		case err != nil:
			return nil, err
		case u.GoogleSub == id.Subject:
			return u, nil
		case u.GoogleSub != "":
			return nil, api.Errorf(api.EGOOGLENOTLINKED, "The account with this email is linked to another Google account.")
		case auth.UsablePassword(u.Password):
			return nil, api.Errorf(api.EGOOGLENOTLINKED, "An account with this email already exists and is not linked to Google. "+
				"Sign in with its password, then link your Google account to it (POST /api/auth/google/link/).")
		}
		if err := s.Users.LinkGoogle(ctx, u.ID, id.Subject); err != nil {
			if api.ErrorCode(err) == api.ECONFLICT || api.ErrorCode(err) == api.EGOOGLEINUSE {
				continue
			}
			return nil, err
		}
		u.GoogleSub = id.Subject
		return u, nil
	}
	return s.Users.FindUserByGoogleSub(ctx, id.Subject)
}

// handleGoogleLink links the Google account of the body's ID token to the
// signed-in user, who then signs in with either.
func (s *Server) handleGoogleLink(c echo.Context) error {
	if s.Google == nil {
		return api.Errorf(api.ENOTFOUND, "Not found.")
	}
	u, err := requireUser(c)
	if err != nil {
		return err
	}
	id, err := s.verifyGoogle(c)
	if err != nil {
		return err
	}
	if err := s.Users.LinkGoogle(c.Request().Context(), u.ID, id.Subject); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// handleGoogleUnlink removes the signed-in user's Google link, unless
// Google is the only way into the account (no usable password).
func (s *Server) handleGoogleUnlink(c echo.Context) error {
	if s.Google == nil {
		return api.Errorf(api.ENOTFOUND, "Not found.")
	}
	u, err := requireUser(c)
	if err != nil {
		return err
	}
	if !auth.UsablePassword(u.Password) {
		return api.Errorf(api.ECONFLICT, "This account has no password: Google is the only way to sign in to it, so it stays linked.")
	}
	if err := s.Users.UnlinkGoogle(c.Request().Context(), u.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}
