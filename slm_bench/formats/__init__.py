"""SLM-Lab's file formats, read and written as SLM-Lab does: specs, Settings lines, logs, run
folders, metrics, plots, baselines, names, the Status rule and BENCHMARKS.md."""
