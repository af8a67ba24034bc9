# Fails unless README.md contains SOURCE verbatim inside a ```cpp block.
file(READ ${README} readme)
file(READ ${SOURCE} src)
string(FIND "${readme}" "```cpp\n${src}```" pos)
if(pos EQUAL -1)
  message(FATAL_ERROR "README.md's quickstart differs from ${SOURCE}: keep them identical")
endif()
