-- email_key: the email in its normal form (api.NormalizeEmail, computed in
-- Go by the migration's Go half and by every write), unique: the one form
-- addresses are compared in, for uniqueness and login. It replaces the
-- lower(email) index, which let the Kelvin sign, fullwidth letters or a
-- zero-width space make a second account for the same address.
-- google_sub: the Google account (ID token `sub`) linked to the user, set by
-- Google sign-in when it creates the account or by an explicit link.
ALTER TABLE users ADD COLUMN email_key text;
ALTER TABLE users ADD COLUMN google_sub varchar(255);
CREATE UNIQUE INDEX users_google_sub_key ON users (google_sub);
