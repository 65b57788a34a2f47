package djangoimport

import (
	"strings"

	"github.com/isis-project/isis/api"
)

// The one place that decides how an imported email is stored and when two
// emails are the same address, following isis's store.

// storedEmail is the email as isis's store writes it: trimmed, its domain
// lower-cased (Django's BaseUserManager.normalize_email).
func storedEmail(email string) string {
	email = strings.TrimSpace(email)
	i := strings.LastIndexByte(email, '@')
	if i < 0 {
		return email
	}
	return email[:i] + "@" + strings.ToLower(email[i+1:])
}

// emailKey is the form under which isis keeps emails unique
// (api.NormalizeEmail, the users.email_key column): the conflicts and the
// email_key the import writes both come from this function.
func emailKey(email string) string { return api.NormalizeEmail(email) }
