# fraglab_bpf_skeleton(<target> <source.bpf.c> <skeleton name>)
# Compiles a BPF C file with clang (-target bpf, BTF via -g, CO-RE) and turns
# the object into a libbpf skeleton header with `bpftool gen skeleton`; the
# header (<name>.skel.h) lands in a generated include directory added to
# <target>, so the BPF object is embedded in whatever links <target>.
# The object is built against no vmlinux.h: the programs carry their own
# tracepoint layouts (bpf/tracepoint_compat.bpf.h) relocated at load time.
function(fraglab_bpf_skeleton target src name)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
    set(_arch x86)
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
    set(_arch arm64)
  else()
    message(FATAL_ERROR "fraglab BPF: unsupported architecture ${CMAKE_SYSTEM_PROCESSOR} "
                        "(configure with -DFRAGLAB_BPF=OFF)")
  endif()
  set(_outdir ${CMAKE_CURRENT_BINARY_DIR}/bpf_generated)
  set(_obj ${_outdir}/${name}.bpf.o)
  set(_skel ${_outdir}/bpf/${name}.skel.h)
  set(_dep ${_outdir}/${name}.bpf.d)
  # <asm/types.h> (pulled in by <linux/bpf.h>) lives in the multiarch dir,
  # which clang does not search for -target bpf.
  set(_multiarch "")
  if(CMAKE_LIBRARY_ARCHITECTURE)
    set(_multiarch -I/usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
  endif()
  add_custom_command(
    OUTPUT ${_obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${_outdir}/bpf
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_${_arch}
            -Wall -Werror -I${PROJECT_SOURCE_DIR} ${_multiarch}
            -MD -MF ${_dep} -c ${src} -o ${_obj}
    DEPENDS ${src}
    DEPFILE ${_dep}
    COMMENT "BPF ${name}: clang -target bpf"
    VERBATIM)
  add_custom_command(
    OUTPUT ${_skel}
    COMMAND sh -c "\"$0\" gen skeleton \"$1\" name \"$2\" > \"$3.tmp\" && mv \"$3.tmp\" \"$3\""
            ${BPFTOOL_EXECUTABLE} ${_obj} ${name} ${_skel}
    DEPENDS ${_obj}
    COMMENT "BPF ${name}: bpftool gen skeleton"
    VERBATIM)
  add_custom_target(${name}_skeleton DEPENDS ${_skel})
  add_dependencies(${target} ${name}_skeleton)
  target_include_directories(${target} PUBLIC ${_outdir})
  target_compile_definitions(${target} PUBLIC FRAGLAB_HAVE_BPF=1)
endfunction()
