"""Speed and memory against transformers' DPTForDepthEstimation: see muggled_swinv2/jobs/bench.py."""
from muggled_swinv2.jobs.bench import main
raise SystemExit(main())
