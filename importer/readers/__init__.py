"""One reader per input format. Each turns a file into typed tables (pandas frames) on the file's own clock;
importer/alignment.py later places them on the run's clock.

    bundle.py               run bundles (docs/bundle-format.md)
    streamline_capture.py   Streamline .apc captures (folder or zip)
    streamline_report.py    Streamline text reports (markers, timeline counters, Log view)
    tegrastats.py           tegrastats logs
    power_csv.py            generic power CSVs, Arm Energy Probe (caiman, Workload Automation), MLPerf PTDaemon
    common.py               SourceData, what every log reader returns
    text_tables.py          helpers of the text-table readers (units in headers, exact times, DuckDB's CSV reader)
"""
