/* A shared object without the entry symbol: the loader must say so. */
int okegw_test_not_a_plugin(void);
int okegw_test_not_a_plugin(void) { return 42; }
