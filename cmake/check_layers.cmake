# Fails the build when a module includes a header of a module it may not use.
# Run by the build (see solar_module in CMakeLists.txt) whenever a source of
# MODULE changes: -DMODULE=name -DALLOWED="a;b" -DFILES="f1;f2" -DSTAMP=path.
cmake_minimum_required(VERSION 3.25)
if(NOT ALLOWED)
  set(ALLOWED "nothing but itself")
endif()
foreach(f ${FILES})
  file(STRINGS ${f} lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"[a-z_]+/")
  foreach(l ${lines})
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([a-z_]+)/.*" "\\1" dep "${l}")
    if(NOT dep STREQUAL MODULE AND NOT dep IN_LIST ALLOWED)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\".*" "\\1" hdr "${l}")
      message(FATAL_ERROR "${f}: includes ${hdr}, but module '${MODULE}' may only use: ${ALLOWED}\n"
        "(layers: CMakeLists.txt, solar_module calls; README, 'Layout')")
    endif()
  endforeach()
endforeach()
file(WRITE ${STAMP} "ok\n")
