# The README's two commands as make targets, for those who have make (a fresh Debian or
# Ubuntu machine may not: ./run.sh needs only bash and Python). Arguments: ARGS="...".
.PHONY: train test setup

train:
	./run.sh train $(ARGS)

test:
	./run.sh test $(ARGS)

setup:
	./run.sh setup
