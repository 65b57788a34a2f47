// Package backup takes, lists, rotates and restores the database's backups
// (pg_dump as the owner role, a signed manifest beside each dump) in a
// directory or an S3 bucket.
package backup
