DROP TABLE integrity_sweep_runs;
