from smartcli.cli import main

main()
