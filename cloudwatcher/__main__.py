from cloudwatcher.cli import main

main()
