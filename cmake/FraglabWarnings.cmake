# Warning and sanitizer flags applied through fraglab_target_defaults().
function(fraglab_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wno-unused-parameter
                         -Wno-missing-field-initializers)
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}
                             ${PROJECT_BINARY_DIR}/generated)
endfunction()

if(FRAGLAB_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# fraglab_library(<name> SOURCES <files...> [DEPS <targets...>] [PRIVATE_DEPS <targets...>])
# A static library with fraglab's defaults; while a folder has no sources yet
# it is an INTERFACE library so the targets that link it still configure.
function(fraglab_library name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  if(A_SOURCES)
    add_library(${name} STATIC ${A_SOURCES})
    set_target_properties(${name} PROPERTIES LINKER_LANGUAGE CXX)
    fraglab_target_defaults(${name})
    target_link_libraries(${name} PUBLIC ${A_DEPS} PRIVATE ${A_PRIVATE_DEPS})
  else()
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR}
                               ${PROJECT_BINARY_DIR}/generated)
    target_link_libraries(${name} INTERFACE ${A_DEPS})
  endif()
endfunction()
