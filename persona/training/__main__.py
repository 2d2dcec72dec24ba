"""`python -m persona.training`: the offline trainer process."""

import sys

from persona.training.trainer import main

sys.exit(main())
