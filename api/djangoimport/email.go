package djangoimport

import (
	"github.com/isis-project/isis/api/emailaddr"
	"github.com/isis-project/isis/api/postgres"
)

// The one place that decides how an imported email is stored and when two
// emails are the same address, following isis's store.

// storedEmail is the email as isis's store writes it (postgres.StoredEmail).
func storedEmail(email string) string { return postgres.StoredEmail(email) }

// emailKey is the form under which isis keeps emails unique
// (emailaddr.Normalize, the users.email_key column): the conflicts and the
// email_key the import writes both come from this function.
func emailKey(email string) string { return emailaddr.Normalize(email) }
