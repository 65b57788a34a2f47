package djangoimport

import "strings"

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

// emailKey is the form under which isis keeps emails unique: today the
// store's unique index on lower(email). When the store compares addresses
// in another normal form (api.NormalizeEmail and the users.email_key
// column), return that here: the conflicts and the email_key the import
// writes both come from this function.
func emailKey(email string) string { return strings.ToLower(storedEmail(email)) }
