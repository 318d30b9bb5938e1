# The systemd unit and the Debian package (CPack DEB).
#
# A package is built from a build configured with its final paths:
#   cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_SYSCONFDIR=/etc \
#         -DCMAKE_INSTALL_LOCALSTATEDIR=/var -DOKEGW_BUILD_TESTS=OFF
#   cmake --build build-deb -j2 && (cd build-deb && cpack -G DEB)
# which gives okegw_<version>_<arch>.deb: /usr/bin/okegw, the plugins, the SDK,
# /etc/okegw/plugins.conf (a conffile, store /var/lib/okegw/okegw.db), the
# unit okegw.service, an okegw system user and the service started on
# install (tests/install/test_deb.py).

# --- the systemd unit ------------------------------------------------------
# OKEGW_SYSTEMD_UNITDIR relative = under the prefix (/usr/lib/systemd/system
# for a package; systemd also reads /usr/local/lib/systemd/system).
set(OKEGW_SYSTEMD_UNITDIR lib/systemd/system CACHE STRING
    "where okegw.service is installed (relative: under CMAKE_INSTALL_PREFIX)")
set(OKEGW_UNIT_BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
set(OKEGW_UNIT_DOCDIR ${CMAKE_INSTALL_FULL_DOCDIR})
get_filename_component(OKEGW_UNIT_CONFDIR "${OKEGW_INSTALL_CONFDIR}" ABSOLUTE
                       BASE_DIR "${CMAKE_INSTALL_PREFIX}")
get_filename_component(OKEGW_UNIT_STATEDIR "${OKEGW_INSTALL_STATEDIR}" ABSOLUTE
                       BASE_DIR "${CMAKE_INSTALL_PREFIX}")
# StateDirectory=okegw is /var/lib/okegw; a store elsewhere (an install
# under /usr/local or /opt keeps it under the prefix) is made writable in the
# otherwise read-only system with ReadWritePaths
set(OKEGW_UNIT_STATE_RW "")
if(NOT OKEGW_UNIT_STATEDIR STREQUAL "/var/lib/okegw")
  set(OKEGW_UNIT_STATE_RW "# the installed plugins.conf keeps its store here, not in StateDirectory
# (owner okegw:okegw, mode 0750)
ReadWritePaths=${OKEGW_UNIT_STATEDIR}
")
endif()
configure_file(${PROJECT_SOURCE_DIR}/packaging/okegw.service.in
               ${PROJECT_BINARY_DIR}/install/okegw.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/install/okegw.service DESTINATION ${OKEGW_SYSTEMD_UNITDIR}
        COMPONENT runtime)

# --- the Debian package ----------------------------------------------------
configure_file(${PROJECT_SOURCE_DIR}/packaging/postinst.in ${PROJECT_BINARY_DIR}/deb/postinst
               @ONLY FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
               GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
configure_file(${PROJECT_SOURCE_DIR}/packaging/prerm ${PROJECT_BINARY_DIR}/deb/prerm COPYONLY
               FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
               WORLD_READ WORLD_EXECUTE)
configure_file(${PROJECT_SOURCE_DIR}/packaging/postrm ${PROJECT_BINARY_DIR}/deb/postrm COPYONLY
               FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
               WORLD_READ WORLD_EXECUTE)
# conffiles: every file installed under the configuration folder (dpkg keeps
# a site's changes on upgrade and asks before replacing them)
set(conffiles "${OKEGW_UNIT_CONFDIR}/plugins.conf\n${OKEGW_UNIT_CONFDIR}/plugins.conf.default\n")
file(GLOB_RECURSE site_scripts RELATIVE ${PROJECT_SOURCE_DIR}/scripts ${PROJECT_SOURCE_DIR}/scripts/*)
list(SORT site_scripts)
foreach(f ${site_scripts})
  if(NOT f MATCHES "^lib/" AND NOT f STREQUAL "README.md")
    string(APPEND conffiles "${OKEGW_UNIT_CONFDIR}/scripts/${f}\n")
  endif()
endforeach()
file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/deb/conffiles CONTENT "${conffiles}")

set(CPACK_PACKAGE_NAME okegw)
set(CPACK_PACKAGE_VENDOR "okegw")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "OKE gateway for MBO schools (OOAPI v5, nl-test-admin)")
set(CPACK_PACKAGE_DESCRIPTION
    "okegw sits between a school's student information system and test planning and its test\n\
suppliers, and speaks the OKE standard to all of them: connectors as plugins, a durable\n\
outbox, an audit trail, phases per supplier and the ketentest (okegw accept).")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "okegw maintainers <okegw@localhost>" CACHE STRING
    "Maintainer field of the .deb")
# The package installs where this build was configured to (the binary knows
# its folders: the accept engine, the installed plugins.conf's paths).
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL OFF) # one package: runtime and sdk
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # okegw_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# python3: okegw accept's scenario engine; adduser: the postinst
set(CPACK_DEBIAN_PACKAGE_DEPENDS "python3, adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_BINARY_DIR}/deb/postinst ${PROJECT_BINARY_DIR}/deb/prerm
    ${PROJECT_BINARY_DIR}/deb/postrm ${PROJECT_BINARY_DIR}/deb/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
