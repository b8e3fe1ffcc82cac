"""`python -m remoteenv.keeper [SOCKET]`: run the connection keeper (started on demand by commands)."""

import sys

from remoteenv.keeper.server import main

sys.exit(main())
