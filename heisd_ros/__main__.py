import sys

from heisd_ros.cli import main

sys.exit(main())
