from spywall.cli import main

raise SystemExit(main())
