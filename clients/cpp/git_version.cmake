# Writes OUT (a header defining MAAS_CLI_VERSION) from `git describe --always --dirty` of SRC, at
# build time and only when the text changes, so that `maas --version` names the commit the binary
# was built from (configure time went stale after the next commit) without recompiling main.cc on
# every build. Run by clients/cpp/CMakeLists.txt: cmake -DSRC=... -DOUT=... -P git_version.cmake
execute_process(COMMAND git -C "${SRC}" describe --always --dirty
                OUTPUT_VARIABLE version OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT version)
  set(version unknown)
endif()
set(text "#define MAAS_CLI_VERSION \"git-${version}\"\n")
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
