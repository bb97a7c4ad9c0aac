from slm_bench.cli import main

raise SystemExit(main())
