# Writes OUT, a header that holds file IN as `inline constexpr char NAME[]`
# (a raw string literal), so the broker serves its dashboard without files
# beside it. Run by broker/CMakeLists.txt whenever IN changes:
#   cmake -DIN=dashboard.html -DOUT=dashboard_html.hpp -DNAME=dashboard_html -P embed_file.cmake
file(READ "${IN}" content)
if(content MATCHES "\\)carico_embed\"")
  message(FATAL_ERROR "${IN} contains the raw string's delimiter )carico_embed\"")
endif()
string(LENGTH "${content}" length)
if(length GREATER 65000)
  message(FATAL_ERROR "${IN} is ${length} bytes; a string literal over 65535 is not portable C++")
endif()
get_filename_component(name "${IN}" NAME)
file(WRITE "${OUT}.tmp" "// Generated from broker/${name} by broker/embed_file.cmake: do not edit.
#pragma once

namespace carico {

inline constexpr char ${NAME}[] = R\"carico_embed(${content})carico_embed\";

}  // namespace carico
")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
file(REMOVE "${OUT}.tmp")
