from longkit.cli import main

main()
