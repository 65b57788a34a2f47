package config

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

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

// secretValues resolves the configured secrets (value or file).
func (c *Config) SecretValues() (map[string]string, error) {
	out := map[string]string{}
	for _, s := range SecretTable {
		v, file := s.value(c)
		if file != "" {
			b, err := ReadSecretFile(file)
			if err != nil {
				return nil, &Error{File: c.File, Key: s.Key + "_file", Msg: err.Error()}
			}
			v = b
		}
		if v == "" {
			if s.Optional {
				continue
			}
			return nil, &Error{File: c.File, Key: s.Key, Msg: "required (or " + s.Key + "_file, or ISISCTL_" + envName(s.Key) + ")"}
		}
		if len(v) < s.MinLen {
			return nil, &Error{File: c.File, Key: s.Key, Msg: "too short: use at least 32 random characters (openssl rand -base64 48)"}
		}
		out[s.Name] = v
	}
	return out, nil
}

// The database roles of a Podman deployment. postgres.user is the server's
// bootstrap superuser (the official image's POSTGRES_USER): isisctl uses it
// for cluster administration only (roles, CREATE/RENAME/DROP DATABASE,
// terminating backends), never to read or run the application database's
// content. The owner role owns the database and every object in it:
// migrations, imports, backups and restores run as it. The application
// role, which every serving container connects as, may only read and write
// the rows.
const (
	ownerRoleSuffix = "_owner"
	appRoleSuffix   = "_app"

	// The Podman secrets of the two roles' passwords, derived from
	// secrets.database_password (no configuration key of their own).
	OwnerPasswordName = "isis-database-owner-password"
	AppPasswordName   = "isis-database-app-password"
)

// OwnerRole is the role that owns the application database.
func (c *Config) OwnerRole() string { return c.Postgres.User + ownerRoleSuffix }

// AppRole is the role the backend connects as.
func (c *Config) AppRole() string { return c.Postgres.User + appRoleSuffix }

// derivedSecret is a secret isisctl computes from the database password.
type DerivedSecret struct {
	Name  string
	Label string
}

// derivedSecrets are the role passwords, created with the configured ones.
var DerivedSecrets = []DerivedSecret{
	{Name: OwnerPasswordName, Label: "isis database owner role password v1"},
	{Name: AppPasswordName, Label: "isis database application role password v1"},
}

// deriveKey is HMAC-SHA256(secret, label) in hex: a value of its own per
// label that does not reveal secret.
func DeriveKey(secret, label string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(label))
	return hex.EncodeToString(m.Sum(nil))
}

// ManifestKeyLabel derives the key of the backup manifests' HMAC from the
// superuser's password, which only the postgres container, the host.PGHelper and
// isisctl see (not the backend, which holds SECRET_KEY and the S3 key).
const ManifestKeyLabel = "isis backup manifest key v1"

// manifestKey is the key that signs and checks the backup manifests.
func (c *Config) ManifestKey() (string, error) {
	v, err := c.SecretValues()
	if err != nil {
		return "", err
	}
	return DeriveKey(v[DatabasePasswordName], ManifestKeyLabel), nil
}

func envName(key string) string { return strings.ToUpper(strings.ReplaceAll(key, ".", "_")) }

// readSecretFile reads a secret, dropping one trailing newline.
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %v", path, UnwrapPath(err))
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
