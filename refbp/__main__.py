from refbp.entry_point import main

raise SystemExit(main())
