# Install rules: the gateway, its plugins, scripts, a default configuration and
# docs (component runtime), and the plugin SDK a supplier builds against out of
# tree: headers, okegw-plugin.pc, the okegw-plugin CMake package and the plugin
# template (component sdk).
#
#   cmake --install build --prefix PREFIX
#
# Layout under PREFIX (GNUInstallDirs names; defaults shown):
#   bin/okegw
#   lib/okegw/plugins/<name>.so          the built-in plugins, also as modules
#   include/oke/*.h                      the SDK
#   lib/pkgconfig/okegw-plugin.pc
#   lib/cmake/okegw-plugin/              find_package(okegw-plugin)
#   share/okegw/scripts/lib/             the Lua helper library
#   share/okegw/plugin-template/         the template a supplier copies
#   etc/okegw/plugins.conf               the default configuration (kept when
#                                        present; plugins.conf.default is new)
#   etc/okegw/scripts/<connector>/       its connectors' mappings (site files)
#   var/lib/okegw/                       the store
#   share/doc/okegw/
#
# The paths in the installed plugins.conf are relative to it, so the tree can
# be moved as a whole. A directory given as an absolute path (for a package:
# -DCMAKE_INSTALL_SYSCONFDIR=/etc -DCMAKE_INSTALL_LOCALSTATEDIR=/var) is
# written as the absolute path instead.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(OKEGW_INSTALL_PLUGINSDIR ${CMAKE_INSTALL_LIBDIR}/okegw/plugins)
set(OKEGW_INSTALL_CONFDIR ${CMAKE_INSTALL_SYSCONFDIR}/okegw)
set(OKEGW_INSTALL_STATEDIR ${CMAKE_INSTALL_LOCALSTATEDIR}/lib/okegw)
set(OKEGW_INSTALL_DATADIR ${CMAKE_INSTALL_DATADIR}/okegw)
set(OKEGW_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/okegw-plugin)

# The plugin ABI of the headers being installed, for the .pc and the package.
file(STRINGS ${PROJECT_SOURCE_DIR}/include/oke/plugin.h abi_lines
     REGEX "^#define OKE_ABI_(MAJOR|MINOR) +[0-9]+")
foreach(part MAJOR MINOR)
  string(REGEX MATCH "OKE_ABI_${part} +([0-9]+)" m "${abi_lines}")
  if(NOT m)
    message(FATAL_ERROR "include/oke/plugin.h: no #define OKE_ABI_${part}")
  endif()
  set(OKE_ABI_${part} ${CMAKE_MATCH_1})
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${PROJECT_SOURCE_DIR}/include/oke/plugin.h ${PROJECT_SOURCE_DIR}/plugins.conf)

# The SDK as a target: what a plugin compiles against, installed and exported.
add_library(okegw_plugin_sdk INTERFACE)
add_library(okegw::plugin-sdk ALIAS okegw_plugin_sdk)
target_include_directories(okegw_plugin_sdk INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
set_target_properties(okegw_plugin_sdk PROPERTIES EXPORT_NAME plugin-sdk)

# --- runtime ---------------------------------------------------------------
install(TARGETS okegw RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
# The build names them okegw_<name>.so; installed they are <name>.so.
foreach(p ${OKEGW_BUILTIN_PLUGINS})
  install(FILES $<TARGET_FILE:okegw_${p}> DESTINATION ${OKEGW_INSTALL_PLUGINSDIR} RENAME ${p}.so
          COMPONENT runtime)
endforeach()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/scripts/lib/ DESTINATION ${OKEGW_INSTALL_DATADIR}/scripts/lib
        COMPONENT runtime)
# Per-connector mappings are site configuration, next to plugins.conf where a
# connector looks for scripts/<name>/ by default.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/scripts/ DESTINATION ${OKEGW_INSTALL_CONFDIR}/scripts
        COMPONENT runtime
        REGEX "/scripts/lib(/.*)?$" EXCLUDE
        REGEX "/scripts/README.md$" EXCLUDE)
install(DIRECTORY DESTINATION ${OKEGW_INSTALL_STATEDIR} COMPONENT runtime)

# The installed plugins.conf: the repo's, with store and scripts_lib pointing
# into the installed tree (the repo's own file keeps working from the repo
# root as ./build/okegw -c plugins.conf).
function(okegw_conf_path out dir)
  if(IS_ABSOLUTE "${OKEGW_INSTALL_CONFDIR}" OR IS_ABSOLUTE "${dir}")
    get_filename_component(abs "${dir}" ABSOLUTE BASE_DIR "${CMAKE_INSTALL_PREFIX}")
    set(${out} "${abs}" PARENT_SCOPE)
  else()
    file(RELATIVE_PATH rel "/r/${OKEGW_INSTALL_CONFDIR}" "/r/${dir}")
    set(${out} "${rel}" PARENT_SCOPE)
  endif()
endfunction()
okegw_conf_path(conf_store "${OKEGW_INSTALL_STATEDIR}/okegw.db")
okegw_conf_path(conf_scripts_lib "${OKEGW_INSTALL_DATADIR}/scripts/lib")
file(READ ${PROJECT_SOURCE_DIR}/plugins.conf conf_text)
okegw_conf_path(conf_doc "${CMAKE_INSTALL_DOCDIR}/README.md")
set(conf_text "; Installed by okegw's install rules from its plugins.conf (a relative
; path is relative to this file). README.md: ${conf_doc}
${conf_text}")
string(REGEX REPLACE "\n[ \t]*(store|scripts_lib)[ \t]*=[^\n]*" "" conf_text "${conf_text}")
string(REGEX MATCH "\n\\[gateway\\][^\n]*\n" gateway_header "${conf_text}")
if(NOT gateway_header)
  message(FATAL_ERROR "plugins.conf: no [gateway] section to install")
endif()
string(REPLACE "${gateway_header}" "${gateway_header}\
store = ${conf_store}   ; the SQLite file\n\
scripts_lib = ${conf_scripts_lib}   ; the Lua helper library\n" conf_text "${conf_text}")
set(conf_out ${PROJECT_BINARY_DIR}/install/plugins.conf)
set(conf_old "")
if(EXISTS ${conf_out})
  file(READ ${conf_out} conf_old)
endif()
if(NOT conf_old STREQUAL conf_text)
  file(WRITE ${conf_out} "${conf_text}")
endif()
# An installed plugins.conf is the site's (tokens, connectors): installing
# again leaves it alone and puts the new default next to it.
install(FILES ${conf_out} DESTINATION ${OKEGW_INSTALL_CONFDIR} RENAME plugins.conf.default
        COMPONENT runtime)
if(IS_ABSOLUTE "${OKEGW_INSTALL_CONFDIR}")
  set(conf_dest "${OKEGW_INSTALL_CONFDIR}")
else()
  set(conf_dest "\${CMAKE_INSTALL_PREFIX}/${OKEGW_INSTALL_CONFDIR}")
endif()
install(CODE "
  if(EXISTS \"\$ENV{DESTDIR}${conf_dest}/plugins.conf\")
    message(STATUS \"Keeping: \$ENV{DESTDIR}${conf_dest}/plugins.conf (new default: plugins.conf.default)\")
  else()
    file(INSTALL DESTINATION \"${conf_dest}\" TYPE FILE RENAME plugins.conf FILES \"${conf_out}\")
  endif()" COMPONENT runtime)

install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/scripts/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR}/scripts
        COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/plugins/rest/README.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/plugins/rest COMPONENT runtime)

# --- sdk -------------------------------------------------------------------
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/oke DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        COMPONENT sdk FILES_MATCHING PATTERN "*.h")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/plugin-template/
        DESTINATION ${OKEGW_INSTALL_DATADIR}/plugin-template COMPONENT sdk)

# okegw-plugin.pc, its paths relative to its own folder (${pcfiledir}).
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(OKEGW_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(OKEGW_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
  set(OKEGW_PC_PLUGINSDIR "${CMAKE_INSTALL_FULL_LIBDIR}/okegw/plugins")
else()
  file(RELATIVE_PATH pc_up "/r/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/r")
  string(REGEX REPLACE "/$" "" pc_up "${pc_up}")
  set(OKEGW_PC_PREFIX "\${pcfiledir}/${pc_up}")
  if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
    set(OKEGW_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
  else()
    set(OKEGW_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
  endif()
  set(OKEGW_PC_PLUGINSDIR "\${prefix}/${OKEGW_INSTALL_PLUGINSDIR}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/okegw-plugin.pc.in
               ${PROJECT_BINARY_DIR}/install/okegw-plugin.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/install/okegw-plugin.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT sdk)

# The CMake package okegw-plugin: okegw::plugin-sdk and okegw_add_plugin().
install(TARGETS okegw_plugin_sdk EXPORT okegw-pluginTargets COMPONENT sdk)
install(EXPORT okegw-pluginTargets NAMESPACE okegw:: DESTINATION ${OKEGW_INSTALL_CMAKEDIR}
        COMPONENT sdk)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/okegw-pluginConfig.cmake.in
  ${PROJECT_BINARY_DIR}/install/okegw-pluginConfig.cmake
  INSTALL_DESTINATION ${OKEGW_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR OKEGW_INSTALL_PLUGINSDIR)
# The package version is okegw's; plugins care about the ABI, which only
# breaks with a new major.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/install/okegw-pluginConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/install/okegw-pluginConfig.cmake
              ${PROJECT_BINARY_DIR}/install/okegw-pluginConfigVersion.cmake
        DESTINATION ${OKEGW_INSTALL_CMAKEDIR} COMPONENT sdk)
