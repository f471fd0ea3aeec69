"""Speed and memory against transformers' DPTForDepthEstimation: see muggled_swinv2/bench.py."""
from muggled_swinv2.bench import main
raise SystemExit(main())
