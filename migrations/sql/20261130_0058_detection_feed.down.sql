DROP TABLE detection_feed;
