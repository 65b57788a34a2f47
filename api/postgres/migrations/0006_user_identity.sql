-- email_key: the email in its normal form (emailaddr.Normalize, computed in
-- Go by the migration's Go half and by every write), unique: the one form
-- addresses are compared in, for uniqueness and login. The lower(email)
-- index let the Kelvin sign, fullwidth letters or a zero-width space make a
-- second account for the same address.
-- Expand first: the column stays nullable and users_email_lower_key stays,
-- so a server of the previous release still running during an upgrade keeps
-- registering users (with no key: found by lower(email) until `isis
-- migrate` fills it in). A later release may make it NOT NULL and drop the
-- old index.
-- google_sub: the Google account (ID token `sub`) linked to the user, set by
-- Google sign-in when it creates the account or by an explicit link.
ALTER TABLE users ADD COLUMN email_key text;
ALTER TABLE users ADD COLUMN google_sub varchar(255);
CREATE UNIQUE INDEX users_google_sub_key ON users (google_sub);
CREATE UNIQUE INDEX users_email_key ON users (email_key);
