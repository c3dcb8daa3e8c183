# Sourced by the science scripts with their arguments ASTROCLEAR OUT SIZE SEED [simulate options...]:
# sets exe, makes OUT the working folder and simulates the stack into OUT/s unless it is there.
exe=$1 out=$2 size=$3 seed=$4
shift 4
mkdir -p "$out"
cd "$out"
[ -f s/stack.toml ] || "$exe" simulate -o s --size "$size" --seed "$seed" "$@" > /dev/null
