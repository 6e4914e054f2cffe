import sys

from server.cli.app import main

sys.exit(main())
