-- Invitations by email: inviting a member no longer creates an account or hands the inviter
-- a code. An invitation names an email; user_id is filled when an account with that email
-- exists, and only the account whose email it names may accept it. token_hash is now the
-- SHA-256 of the single-use link emailed to the address (NULL when no email was sent).
ALTER TABLE membership_invitations ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE membership_invitations ALTER COLUMN token_hash DROP NOT NULL;
-- The codes of pending invitations were shown to the inviter; they prove nothing.
UPDATE membership_invitations SET token_hash = NULL;

DROP INDEX membership_invitations_pending_idx;
DROP INDEX membership_invitations_user_idx;
-- At most one pending invitation per organization and email; a new one replaces it.
CREATE UNIQUE INDEX membership_invitations_pending_idx ON membership_invitations (organization_id, lower(email))
    WHERE accepted_at IS NULL AND declined_at IS NULL;
-- The signed-in account's pending invitations (dashboard), found by its email.
CREATE INDEX membership_invitations_email_idx ON membership_invitations (lower(email))
    WHERE accepted_at IS NULL AND declined_at IS NULL;
-- The emailed link's token.
CREATE UNIQUE INDEX membership_invitations_token_idx ON membership_invitations (token_hash)
    WHERE token_hash IS NOT NULL;

-- An account an inviter created with a one-time password the inviter saw (the earlier
-- invitation flow) may be controlled by that inviter, whether or not the password was
-- changed since. Such an account accepts no invitation until a superadmin resets its
-- password or its owner proves control of the address through an emailed invitation link.
ALTER TABLE users ADD COLUMN created_by_inviter boolean NOT NULL DEFAULT false;
UPDATE users u SET created_by_inviter = true
WHERE NOT u.superadmin AND EXISTS (
    SELECT 1 FROM membership_invitations i
    WHERE i.user_id = u.id AND i.created_at BETWEEN u.created_at - interval '5 seconds' AND u.created_at + interval '5 seconds');
