# What cmake/embed_schema.cmake and cmake/embed_console.cmake share: a file
# as a C byte array, and writing the generated C file only when it changed.

# Sets out_var to "static const char <c_name>[] = {0x.., ..., 0x00};" holding
# the bytes of file and a NUL (not counted: sizeof - 1 is the length).
function(embed_bytes file c_name out_var)
    file(READ ${file} hex HEX)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
    string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)"
           "\\1\n    " hex "${hex}")
    set(${out_var} "static const char ${c_name}[] = {\n    ${hex}0x00};\n" PARENT_SCOPE)
endfunction()

# Writes content to path unless it already holds exactly that, so that an
# unchanged input does not recompile and relink everything.
function(embed_write path content)
    if(EXISTS ${path})
        file(READ ${path} old)
        if(old STREQUAL content)
            return()
        endif()
    endif()
    file(WRITE ${path} "${content}")
endfunction()
