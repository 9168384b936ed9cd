from aikore.demo.app import main

raise SystemExit(main())
