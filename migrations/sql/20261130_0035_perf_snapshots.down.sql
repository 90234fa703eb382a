DROP TABLE perf_snapshots;
