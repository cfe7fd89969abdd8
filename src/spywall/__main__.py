from spywall.program import main

raise SystemExit(main())
