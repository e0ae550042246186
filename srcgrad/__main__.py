"""`python -m srcgrad demo`: differentiate the tutorial's binary cross-entropy loss."""
import sys


def demo():
    from .demo import main
    main()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m srcgrad demo     differentiate the tutorial's BCE loss\n"
              "                                  and print the generated gradient")
        return 0
    if argv[0] == "demo":
        demo()
        return 0
    print(f"unknown command {argv[0]!r}; try `python -m srcgrad --help`", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
