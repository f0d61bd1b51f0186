from .job import main

if __name__ == "__main__":
    main()
