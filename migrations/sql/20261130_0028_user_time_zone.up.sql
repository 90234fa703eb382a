-- A user's time-zone preference: the IANA zone the console shows times in on hover (NULL is
-- UTC). The longest zone name in the tz database is 32 characters; 64 leaves room.
ALTER TABLE users ADD COLUMN time_zone varchar(64);
