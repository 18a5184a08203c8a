from mistrec.cli.main import main

raise SystemExit(main())
