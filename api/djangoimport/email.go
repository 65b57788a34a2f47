package djangoimport

import (
	"strings"

	"github.com/isis-project/isis/api/postgres"
)

// The one place that decides how an imported email is stored and when two
// emails are the same address: whatever isis's store does for its own users
// (postgres.NormalizeEmail to store, unique on lower(email)). When the store
// changes its normal form, change these two lines with it.

// storedEmail is the email as isis's store writes it.
func storedEmail(email string) string { return postgres.NormalizeEmail(email) }

// emailKey is the form under which isis keeps emails unique.
func emailKey(email string) string { return strings.ToLower(storedEmail(email)) }
