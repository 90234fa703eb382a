ALTER TABLE users DROP COLUMN created_by_inviter;
DROP INDEX membership_invitations_token_idx;
DROP INDEX membership_invitations_email_idx;
DROP INDEX membership_invitations_pending_idx;
DELETE FROM membership_invitations WHERE user_id IS NULL;
UPDATE membership_invitations SET token_hash = '' WHERE token_hash IS NULL;
ALTER TABLE membership_invitations ALTER COLUMN token_hash SET NOT NULL;
ALTER TABLE membership_invitations ALTER COLUMN user_id SET NOT NULL;
CREATE UNIQUE INDEX membership_invitations_pending_idx ON membership_invitations (organization_id, user_id)
    WHERE accepted_at IS NULL AND declined_at IS NULL;
CREATE INDEX membership_invitations_user_idx ON membership_invitations (user_id)
    WHERE accepted_at IS NULL AND declined_at IS NULL;
