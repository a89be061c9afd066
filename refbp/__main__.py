from refbp.cli import main

raise SystemExit(main())
