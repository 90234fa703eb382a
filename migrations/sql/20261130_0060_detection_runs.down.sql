DROP TABLE detection_run;
