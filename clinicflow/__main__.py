from clinicflow.cli import main

main()
