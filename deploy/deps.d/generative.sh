# Sourced by deploy/install-deps.sh ($root, $venv set). Generative service extras:
#   nlohmann-json3-dev: the JSON header of safetensors files (mlp_decoder weight import).
# Idempotent: only checks when everything is present.
if ! dpkg-query -W -f='${Status}' nlohmann-json3-dev 2>/dev/null | grep -q "ok installed"; then
  echo "install-deps (generative): installing nlohmann-json3-dev"
  gen_sudo=()
  [ "$(id -u)" -eq 0 ] || gen_sudo=(sudo)
  DEBIAN_FRONTEND=noninteractive "${gen_sudo[@]}" apt-get install -y -qq --no-install-recommends \
    nlohmann-json3-dev || {
    DEBIAN_FRONTEND=noninteractive "${gen_sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${gen_sudo[@]}" apt-get install -y -qq --no-install-recommends \
      nlohmann-json3-dev
  }
fi
