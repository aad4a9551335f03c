import sys

from sertk.cli import main

sys.exit(main())
