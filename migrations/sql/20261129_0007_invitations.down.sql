DROP TABLE membership_invitations;
