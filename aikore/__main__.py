from aikore.cli import main

raise SystemExit(main())
